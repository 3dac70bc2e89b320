"""Imports every module that declares an `ApiTable`, so `open_store` creates them all."""

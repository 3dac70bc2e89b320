"""Signed webhooks from the 3PL (`logistics`) and the payment gateway (`payments`), per
the Standard Webhooks specification: signatures (`signatures`), secrets and deliveries
in the API's store (`records`), bodies (`payloads`) and routes (`routes`).
See docs/webhooks.md."""

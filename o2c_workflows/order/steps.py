"""Running a step: calling a system (as a normal or local activity), parking the order
OnHold when a step fails for good until support retries or releases it, and
continuing as new while a long-lived order waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from temporalio import workflow
from temporalio.types import MethodAsyncSingleParam

from activities.order_activities import OrderActivities
from o2c_workflows import (
    calls,
)
from o2c_workflows.failure_policy import ACTIVITY_FAILURES, OnFailure, StepFailure
from o2c_workflows.models import OrderStatus
from o2c_workflows.order.base import (
    OrderInput,
    Resolution,
)
from o2c_workflows.order.timeline import Timeline
from o2c_workflows.state import (
    HoldKind,
    HoldResolved,
    HoldState,
)

A = TypeVar("A")
T = TypeVar("T")


class Abandon(Exception):
    """A step failed in a way that means the order cannot go on: undo and cancel."""

    def __init__(self, step: str, failure: StepFailure) -> None:
        super().__init__(f"{step} failed: {failure.message}")
        self.reason = f"{step} failed ({failure.code}): {failure.message}"


class Steps(Timeline):
    async def _call(
        self,
        activity: MethodAsyncSingleParam[OrderActivities, A, T],
        argument: A,
        config: workflow.ActivityConfig,
    ) -> T:
        """One activity, normal or local as this order was started (`calls.execute`)."""
        self._in_flight.calls += 1
        try:
            return await calls.execute(
                activity,
                argument,
                config,
                local=self._local_activities,
                system_queues=self._system_queues,
            )
        finally:
            self._in_flight.calls -= 1

    async def _step(
        self,
        step: str,
        activity: MethodAsyncSingleParam[OrderActivities, A, T],
        argument: A,
        config: workflow.ActivityConfig,
    ) -> T:
        """Run one step; if it fails for good, act on the failure policy.

        Parked, the order waits here for support: `retry` runs the same step
        again with the same idempotency key, so nothing is lost or repeated.
        """
        while True:
            self._stop_if_cancelled()
            try:
                result = await self._call(activity, argument, config)
            except ACTIVITY_FAILURES as error:
                self._stop_if_cancelled()
                failure = StepFailure.of(error)
                if failure.policy is OnFailure.COMPENSATE:
                    raise Abandon(step, failure) from error
                await self._park(HoldKind.FALLOUT, step, failure.code, failure.message)
                continue
            self._stop_if_cancelled()
            return result

    def _stop_if_cancelled(self) -> None:
        # An activity may finish after the order was cancelled; its effect is
        # then undone by compensation, but the lifecycle must not go on.
        if self._in_flight.stopping:
            raise asyncio.CancelledError()

    async def _park(self, kind: HoldKind, step: str, code: str, message: str) -> Resolution:
        """Put the order OnHold at `step` until support retries, releases or cancels it."""
        hold = HoldState(
            kind=kind,
            step=step,
            code=code,
            message=message,
            since=workflow.now(),
            resume_status=self._state.status,
        )
        self._state.hold = hold
        self._in_flight.resolution = None
        self._transition(OrderStatus.ON_HOLD, f"{step}: {message}", hold_reason=code)
        await workflow.wait_condition(lambda: self._in_flight.resolution is not None)
        resolution, self._in_flight.resolution = self._in_flight.resolution, None
        action, self._in_flight.resolved_with = self._in_flight.resolved_with, None
        assert resolution is not None
        actor = action.actor if action is not None else None
        self._state.hold = None
        self._state.holds_resolved.append(
            HoldResolved(step=step, code=code, resolution=resolution.value,
                         note=action.note if action is not None else None,
                         at=workflow.now(), actor=actor)
        )  # fmt: skip
        self._transition(self._rolled_up_status(), f"{resolution.value} at {step}",
                         hold_reason=None, actor=actor)  # fmt: skip
        return resolution

    async def _wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait for `condition`; a long-lived order continues as new while it waits."""
        while True:
            await workflow.wait_condition(
                lambda: condition() or workflow.info().is_continue_as_new_suggested()
            )
            if condition():
                return
            await self._continue_as_new()

    async def _continue_as_new(self) -> None:
        # Nothing may be in flight: every handler finished and no activity of
        # ours running, so the next run starts from exactly this state.
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and self._in_flight.idle
        )
        self._publish()
        workflow.continue_as_new(
            OrderInput(
                order=self._state.order,
                dunning=self._dunning,
                carried=self._state,
                local_activities=self._local_activities,
                system_queues=self._system_queues,
            )
        )

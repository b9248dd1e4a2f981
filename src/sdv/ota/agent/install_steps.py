"""The update agent's install steps: verify the received bundle and stage its payloads into the inactive side of
each slot group it carries, or cancel."""

from __future__ import annotations

import logging

from sdv.ota.agent.records import journaled
from sdv.ota.agent.slots import ImageSlotGroup, PayloadOrigin, SlotWriter
from sdv.ota.agent.state import (
    AgentRecord,
    AgentState,
    BundleRecord,
    other_slot,
    updated,
    without_trial,
)
from sdv.ota.agent.vehicle_steps import VehicleSteps
from sdv.ota.bundle.format import read_header
from sdv.ota.bundle.manifest import Manifest, Payload
from sdv.ota.bundle.store import (
    load_time_state,
    save_time_state,
)
from sdv.ota.bundle.trusted_time import TimeState
from sdv.ota.bundle.verifier import BundleVerifier
from sdv.ota.errors import (
    AgentStateError,
    InsufficientSpaceError,
    OperationCancelledError,
    OtaError,
)

__all__ = ["InstallSteps"]

_logger = logging.getLogger(__name__)
_S = AgentState


class _StagingSink:
    """Passes a payload's checked bytes to its slot writer, counting progress and honouring cancel."""

    def __init__(self, agent: InstallSteps, writer: SlotWriter) -> None:
        self._agent = agent
        self.writer = writer

    def write(self, chunk: memoryview, /) -> None:
        self._agent._staged(chunk, self.writer)


class InstallSteps(VehicleSteps):
    """Verifying and staging a received bundle (``Transferred`` → ``Processing`` → ``Ready``), and cancelling."""

    @journaled("install")
    def process(self) -> BundleRecord:
        """Verify the received bundle and stage its payloads in the inactive slot (``Processing`` → ``Ready``).

        Returns:
            The staged bundle.

        Raises:
            AgentStateError: no received bundle.
            VerificationError: the bundle is refused (the state becomes ``Failed`` with the reason).
            InsufficientSpaceError: a slot cannot hold a payload (from the header, or a tree counted in its file
                system's blocks and inodes before unpacking); the bundle is kept and the state returns to
                ``Transferred`` with the reason, so the install can be retried once there is space.
            OperationCancelledError: :meth:`cancel` stopped it (the state becomes ``Idle``).
            OtaError: the trust file or time state cannot be read (the state stays ``Transferred``).
            PreconditionsUnmetError, InsufficientEnergyError: the vehicle is not in the state the bundle and the
                ECU need (after waiting ``vehicle.wait_s``); the state stays ``Transferred``.
            ConsentError: the driver declined (the bundle is discarded: ``Idle``), postponed or did not answer.
        """
        self._vehicle_before_install()  # preconditions, energy, consent (sdv.ota.agent.vehicle_steps)
        with self._mutex:
            self._require("install", _S.TRANSFERRED)
            transfer = self._record.transfer
            sha = transfer.bundle_sha256 if transfer is not None else ""
            verifier = self._verifier()  # an unreadable trust file must not cost the received bundle
            self._cancel.clear()
            self._go(_S.PROCESSING, groups=without_trial(self._record), failure=None)
        writers: list[SlotWriter] = []
        try:
            manifest = self._stage(verifier, f"bundle {sha[:16]}", writers)
            for writer in writers:
                writer.finish()
        except InsufficientSpaceError as error:  # the bundle is kept: the install can be retried
            for writer in writers:
                writer.abort()
            with self._mutex:
                self._staged_bytes = self._staging_total = 0
                self._go(_S.TRANSFERRED, groups=without_trial(self._record), failure=str(error))
            raise
        except OperationCancelledError:
            self._abandon(writers, _S.IDLE, None)
            raise
        except OtaError as error:
            self._abandon(writers, _S.FAILED, str(error))
            raise
        except BaseException as error:
            self._abandon(writers, _S.FAILED, f"staging failed: {error}")
            raise
        targets = {payload.name: self._group_for(payload, sha).name for payload in manifest.payloads}
        bundle = BundleRecord.of(manifest, sha).model_copy(update={"targets": targets})
        with self._mutex:
            staged = {name: group.staged() for name, group in self._record.groups.items()}
            self._go(_S.READY, bundle=bundle, transfer=None, groups=staged)
            self.transfers.discard(staged=True)
            self._staged_bytes = self._staging_total = 0
        return bundle

    def _stage(self, verifier: BundleVerifier, source: str, writers: list[SlotWriter]) -> Manifest:
        with self.transfers.reader() as handle:  # placed payloads are read from their slots
            header = read_header(handle, source, self.config.limits)
            manifest, _ = verifier.verify_header(header, source)  # before a single byte is written
            groups = dict(self._record.groups)
            for payload in manifest.payloads:
                group = self._group_for(payload, source)
                trial = other_slot(groups[group.name].active_slot)
                group.check_space(trial, payload)
                groups[group.name] = groups[group.name].model_copy(update={"trial_slot": trial})
            with self._mutex:  # the sides written are on record before the first byte reaches them
                self._persist(updated(self._record, groups=groups))
            self._staged_bytes, self._staging_total = 0, manifest.total_size
            handle.seek(0)
            offsets, offset = {}, header.encoded_length
            for payload in manifest.payloads:
                offsets[payload.name], offset = offset, offset + payload.size

            def sink_for(payload: Payload) -> _StagingSink:
                group = self._group_for(payload, source)
                trial = self._record.groups[group.name].trial_slot
                if trial is None or trial == self._record.groups[group.name].active_slot:  # pragma: no cover
                    raise AgentStateError(f"slot group {group.name}: refusing to stage into the active side")
                if self.transfers.placed_at(offsets[payload.name]) and isinstance(group, ImageSlotGroup):
                    writer: SlotWriter = group.placed_writer(
                        trial
                    )  # its bytes arrived in the slot: checked only
                    writers.append(writer)
                    return _StagingSink(self, writer)
                # a tree is unpacked from the received bundle once verified: its bytes are never copied
                origin = PayloadOrigin(
                    self.incoming,
                    offsets[payload.name],
                    payload.size,
                    payload.compression,
                    self.config.limits.max_decoder_memory_bytes,
                )
                writer = group.writer(trial, payload, origin)
                writers.append(writer)
                return _StagingSink(self, writer)

            verified = verifier.verify_stream(handle, source, sink_for)
        state = load_time_state(self.time_state_path)
        advanced = (state or TimeState(latest=verified.manifest.created)).advanced(verified.manifest.created)
        if advanced != state:
            save_time_state(self.time_state_path, advanced)
        return verified.manifest

    def _staged(self, chunk: memoryview, writer: SlotWriter) -> None:
        if self._cancel.is_set():
            raise OperationCancelledError("staging cancelled")
        writer.write(chunk)
        self._staged_bytes += len(chunk)
        self._observer.staged(self._staged_bytes)
        self._notify()

    def _abandon(self, writers: list[SlotWriter], state: AgentState, failure: str | None) -> None:
        for writer in writers:
            writer.abort()
        with self._mutex:
            self.transfers.discard()
            self._staged_bytes = self._staging_total = 0
            self._go(state, transfer=None, bundle=None, groups=without_trial(self._record), failure=failure)

    # -- cancel --------------------------------------------------------------------------------------------------

    @journaled("cancel")
    def cancel(self) -> AgentRecord:
        """Abandon a transfer or a staged bundle, where that is safe (never once activation began).

        While processing, staging stops at the next chunk and the state becomes ``Idle``. An install waiting for
        the vehicle or the driver's consent stops waiting (its notice is withdrawn from the cockpit) and the
        received bundle is discarded.

        Raises:
            AgentStateError: nothing to cancel, or activation began (use :meth:`rollback`).
        """
        with self._mutex:
            state = self._record.state
            if state is _S.PROCESSING:
                self._cancel.set()
                return self._record
            self._require(
                "cancel",
                _S.TRANSFERRING, _S.TRANSFERRED, _S.READY, _S.FAILED, _S.ACTIVATED, _S.ROLLED_BACK,
            )  # fmt: skip
            self._cancel.set()  # wakes an install waiting for the vehicle or the driver (vehicle_steps)
            self.transfers.discard()
            self._go(_S.IDLE, transfer=None, bundle=None, groups=without_trial(self._record), failure=None)
            return self._record

    def _abandon_staging(self) -> None:
        """Staging was interrupted: drop its leftovers; the inactive sides are rewritten from their start."""
        self.groups.remove_staging_leftovers()
        self._go(_S.TRANSFERRED, groups=without_trial(self._record))

"""The update agent's link to the cockpit of ``sdv serve``: a :class:`~sdv.ota.agent.consent.ConsentChannel` over
``sdv.cockpit.v1.UpdateNotices`` with the agent's token (``ota`` scope).

The agent posts its notice (``PostNotice``), watches it (``WatchNotice``, a stream that ends with the answer) and
tells the result (``TellResult``); the head unit streams the board and answers on the same server. A failure to
reach the server is an :class:`~sdv.ota.errors.OtaError`: the agent then refuses the install (no consent is not
consent).
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import grpc

from sdv._proto.sdv.cockpit.v1 import notices_pb2, notices_pb2_grpc
from sdv.client import ChannelSecurity
from sdv.client.address import SIGNAL_SERVER_PORT, resolve_target
from sdv.ota.agent.consent import Answer, PostedNotice, UpdateResult
from sdv.ota.agent.vehicle_config import SignalsConfig
from sdv.ota.errors import OtaError
from sdv.ota.notice_wire import notice_from_proto, notice_to_proto

__all__ = ["CockpitLink"]


class CockpitLink:
    """Posts notices to ``sdv serve`` and waits for the driver's answer; use in ``with`` or :meth:`close`.

    Args:
        config: the agent configuration's ``vehicle.signals`` (the same server and token as the signals).
    """

    def __init__(self, config: SignalsConfig) -> None:
        if config.server is None:
            raise ValueError("CockpitLink needs vehicle.signals.server")
        security = ChannelSecurity.from_files(token_file=config.token_file, tls_ca=config.ca)
        self.target, security = resolve_target(config.server, SIGNAL_SERVER_PORT, security)
        self._timeout = config.timeout_s
        self._metadata = security.call_metadata()
        credentials = security.channel_credentials()
        options = security.channel_options()
        self._channel = (
            grpc.secure_channel(self.target, credentials, options)
            if credentials is not None
            else grpc.insecure_channel(self.target, options)
        )
        self._stub = notices_pb2_grpc.UpdateNoticesStub(self._channel)

    def __enter__(self) -> CockpitLink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _failed(self, what: str, error: grpc.RpcError) -> OtaError:
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        return OtaError(f"the cockpit at {self.target}: cannot {what}: {details}")

    def post(self, notice: PostedNotice) -> str:
        """Show the notice on the server's board; returns its id there."""
        timeout_s = max((notice.deadline - notice.posted).total_seconds(), 1.0)
        request = notices_pb2.PostNoticeRequest(notice=notice_to_proto(notice), timeout_s=timeout_s)
        try:
            posted = self._stub.PostNotice(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise self._failed("post the update notice", error) from error
        return posted.id

    def wait(self, notice_id: str, timeout_s: float, cancel: threading.Event) -> Answer | None:
        """The answer, or None when ``timeout_s`` passed first (``cancel`` ends the wait too)."""
        call: Any = self._stub.WatchNotice(  # a stream and a future: the stubs type only the stream
            notices_pb2.WatchNoticeRequest(id=notice_id), timeout=timeout_s, metadata=self._metadata
        )
        stopper = threading.Thread(target=_cancel_when, args=(cancel, call, timeout_s), daemon=True)
        stopper.start()
        try:
            for message in call:
                answer = notice_from_proto(message).answer
                if answer is not None:
                    return answer
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                return None
            raise self._failed("watch the update notice", error) from error
        finally:
            call.cancel()
            stopper.join()
        return None

    def tell(self, notice_id: str, result: UpdateResult) -> None:
        """Tell the user how the update ended."""
        request = notices_pb2.TellResultRequest(id=notice_id, success=result.success, message=result.message)
        try:
            self._stub.TellResult(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise self._failed("tell the result", error) from error


def _cancel_when(cancel: threading.Event, call: Any, timeout_s: float) -> None:
    """End the watch when the agent cancels (the call's own end also ends this thread)."""
    while not call.done():
        if cancel.wait(min(timeout_s, _POLL_S)):
            call.cancel()
            return


_POLL_S = 0.25  # how soon the watch sees the agent's cancel, or its own end

"""A simulated ECU for the diagnostics tests: answers UDS ReadDataByIdentifier over can-isotp on a python-can bus.

In the test process on python-can's virtual bus (:class:`UdsResponder` in a thread), or as a process of its own
on SocketCAN in the guest::

    python tests/uds_responder.py --channel vcan0 --request 7E0 --response 7E8 F189=SW-1.2.3 F18C=SN0042
    python tests/uds_responder.py --channel vcan0 --target 10 F189=GW-7 # normal fixed addressing, 29-bit
    python tests/uds_responder.py --kernel --channel vcan0 --request 7E2 --response 7EA F189=BRK-2

With ``--kernel`` the ECU's ISO-TP is the Linux kernel's (module ``can-isotp``, an ``AF_CAN``/``CAN_ISOTP`` socket
with can-isotp's :class:`isotp.socket`), as on ECUs and testers that use it, instead of can-isotp's user-space
stack over a raw socket: the kernel segments (short frames, unpadded) and obeys flow control itself.

It prints ``ready`` once listening and answers until killed. A DID it does not know gets the negative response
``requestOutOfRange`` (0x31), as ISO 14229-1 says; ``--ignore N`` leaves the first N requests unanswered (a
retry must bring the value; ``--ignore -1`` never answers, an ECU that receives requests and stays silent).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Mapping

import can
import isotp
from udsoncan import Request, Response
from udsoncan.services import ReadDataByIdentifier

__all__ = ["UdsResponder", "answer", "ecu_address", "serve_on_kernel_isotp"]

TESTER = 0xF1


def ecu_address(
    *,
    request: int | None = None,
    response: int | None = None,
    extended: bool = False,
    target: int | None = None,
) -> isotp.Address:
    """The ECU's side of an ISO-TP link: it receives the tester's requests and sends on the response id."""
    if target is not None:
        return isotp.Address(
            isotp.AddressingMode.NormalFixed_29bits, target_address=TESTER, source_address=target
        )
    mode = isotp.AddressingMode.Normal_29bits if extended else isotp.AddressingMode.Normal_11bits
    return isotp.Address(mode, txid=response, rxid=request)


class _Stack(isotp.CanStack):
    """An ECU outlives its bus going down: a receive that fails is a frame not received (after its timeout)."""

    _idle = threading.Event()  # never set: waiting on it is waiting for the timeout

    def _rx_canbus(self, timeout: float) -> isotp.CanMessage | None:
        try:
            return super()._rx_canbus(timeout)
        except can.CanError:
            self._idle.wait(timeout)
            return None


class UdsResponder:
    """Answers ReadDataByIdentifier requests for ``dids`` (DID → data record) until :meth:`stop`."""

    def __init__(
        self, bus: can.BusABC, address: isotp.Address, dids: Mapping[int, bytes], *, ignore: int = 0
    ) -> None:
        self.dids = dict(dids)
        self.ignore = ignore
        self.requests = 0
        self._stack = _Stack(bus, address=address, params={"tx_padding": 0xCC})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-uds-responder", daemon=True)

    def start(self) -> UdsResponder:
        self._stack.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._stack.stop()

    def __enter__(self) -> UdsResponder:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            payload = self._stack.recv(block=True, timeout=0.1)
            if payload is None:
                continue
            self.requests += 1
            if self.ignore < 0 or self.requests <= self.ignore:
                continue
            self._stack.send(self.answer(bytes(payload)))

    def answer(self, payload: bytes) -> bytes:
        """The response payload to one request payload."""
        return answer(self.dids, payload)


def answer(dids: Mapping[int, bytes], payload: bytes) -> bytes:
    """The response payload of an ECU holding ``dids`` to one request payload."""
    request = Request.from_payload(payload)
    if request.service is not ReadDataByIdentifier or request.data is None or len(request.data) != 2:
        return Response(ReadDataByIdentifier, Response.Code.ServiceNotSupported).get_payload()
    did = int.from_bytes(request.data, "big")
    record = dids.get(did)
    if record is None:
        return Response(ReadDataByIdentifier, Response.Code.RequestOutOfRange).get_payload()
    return Response(ReadDataByIdentifier, Response.Code.PositiveResponse, request.data + record).get_payload()


def serve_on_kernel_isotp(
    channel: str, address: isotp.Address, dids: Mapping[int, bytes], ignore: int
) -> None:
    """Answer requests on the kernel's ISO-TP socket until killed.

    Its frames are as short as their data (the kernel's default: no padding), and the tester's flow control is
    the kernel's to obey.
    """
    sock = isotp.socket()
    sock.bind(channel, address)
    print("ready", flush=True)
    requests = 0
    while True:
        try:
            payload = sock.recv()
        except OSError:  # the interface went down: the socket stays bound and receives again once it is up
            threading.Event().wait(0.1)
            continue
        requests += 1
        if payload is None or ignore < 0 or requests <= ignore:
            continue
        with contextlib.suppress(OSError):
            sock.send(answer(dids, bytes(payload)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", default="socketcan")
    parser.add_argument("--channel", required=True)
    parser.add_argument("--request", type=lambda text: int(text, 16))
    parser.add_argument("--response", type=lambda text: int(text, 16))
    parser.add_argument("--extended", action="store_true")
    parser.add_argument(
        "--target", type=lambda text: int(text, 16), help="normal fixed addressing: ECU address"
    )
    parser.add_argument("--ignore", type=int, default=0, help="requests left unanswered first; -1: all")
    parser.add_argument("--kernel", action="store_true", help="the kernel's ISO-TP (can-isotp module)")
    parser.add_argument("dids", nargs="*", metavar="DID=TEXT")
    options = parser.parse_args()
    dids = {int(did, 16): text.encode() for did, _, text in (item.partition("=") for item in options.dids)}
    address = ecu_address(
        request=options.request, response=options.response, extended=options.extended, target=options.target
    )
    if options.kernel:
        serve_on_kernel_isotp(options.channel, address, dids, options.ignore)
        return
    with (
        can.Bus(interface=options.interface, channel=options.channel) as bus,
        UdsResponder(bus, address, dids, ignore=options.ignore),
    ):
        print("ready", flush=True)
        sys.stdin.read()  # until killed, or until the test closes our standard input


if __name__ == "__main__":
    main()

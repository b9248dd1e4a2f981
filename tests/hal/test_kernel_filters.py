"""The kernel receive filters a SocketCAN bus gets from its DBC ids (checked on a real socket in tests/socketcan)."""

from __future__ import annotations

import can

from sdv.hal.sources import MAX_KERNEL_FILTERS, kernel_filters


def test_each_dbc_id_passes_with_the_mask_of_its_id_kind() -> None:
    filters = kernel_filters([(0x18FF50E5, True), (0x100, False)])
    assert filters == [
        {"can_id": 0x100, "can_mask": 0x7FF, "extended": False},
        {"can_id": 0x18FF50E5, "can_mask": 0x1FFFFFFF, "extended": True},
    ]
    bus = can.Bus(interface="virtual", channel="filters", can_filters=filters)
    try:  # python-can reads them as the kernel does: the standard 0x100 is not the extended 0x100
        assert bus._matches_filters(can.Message(arbitration_id=0x100, is_extended_id=False))
        assert not bus._matches_filters(can.Message(arbitration_id=0x100, is_extended_id=True))
        assert not bus._matches_filters(can.Message(arbitration_id=0x101, is_extended_id=False))
    finally:
        bus.shutdown()


def test_no_ids_or_more_than_the_kernel_takes_mean_no_filter() -> None:
    assert kernel_filters([]) is None
    assert kernel_filters([(frame_id, False) for frame_id in range(MAX_KERNEL_FILTERS + 1)]) is None
    assert len(kernel_filters([(frame_id, False) for frame_id in range(MAX_KERNEL_FILTERS)]) or []) == 512

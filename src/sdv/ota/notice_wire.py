"""Update notices on the wire: :class:`~sdv.ota.agent.consent.PostedNotice` ↔ ``sdv.cockpit.v1.UpdateNotice``, for
the servicer in ``sdv serve`` and the agent's link to it alike.

Invariants:

* a notice read from the wire is validated as the manifest's :class:`~sdv.ota.bundle.vehicle_terms.Notice` (at
  least one language, bounded texts); anything else is a :class:`~sdv.ota.errors.NoticeFormatError`;
* the decision ``DECISION_UNSPECIFIED`` is never an answer.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from sdv._proto.sdv.cockpit.v1 import notices_pb2
from sdv.ota.agent.consent import Answer, Decision, PostedNotice, UpdateResult
from sdv.ota.bundle.vehicle_terms import Notice
from sdv.ota.errors import NoticeFormatError
from sdv.wire import timestamp_from_proto, timestamp_to_proto

__all__ = ["DECISIONS", "decision_from_proto", "notice_from_proto", "notice_to_proto"]

DECISIONS: dict[Decision, notices_pb2.Decision.ValueType] = {
    Decision.ACCEPT: notices_pb2.DECISION_ACCEPT,
    Decision.POSTPONE: notices_pb2.DECISION_POSTPONE,
    Decision.DECLINE: notices_pb2.DECISION_DECLINE,
}
"""The wire value of each decision."""
_DECISIONS_BACK = {number: decision for decision, number in DECISIONS.items()}
_LISTS = ("changes", "unavailable", "safety")
_OPTIONAL = ("after_success", "after_failure")


def decision_from_proto(value: notices_pb2.Decision.ValueType) -> Decision:
    """The decision of a wire value.

    Raises:
        NoticeFormatError: ``DECISION_UNSPECIFIED`` or an unknown number.
    """
    decision = _DECISIONS_BACK.get(value)
    if decision is None:
        raise NoticeFormatError("the decision must be DECISION_ACCEPT, DECISION_POSTPONE or DECISION_DECLINE")
    return decision


def _time(value: datetime, message: object) -> None:
    timestamp_to_proto(value.timestamp(), message)  # type: ignore[arg-type]


def notice_to_proto(notice: PostedNotice, language: str = "") -> notices_pb2.UpdateNotice:
    """The wire form of a notice (only ``language``'s text when the notice has it, every text otherwise)."""
    message = notices_pb2.UpdateNotice(
        id=notice.id, bundle=notice.bundle, version=notice.version, consent_required=notice.consent_required
    )
    texts = notice.notice.texts
    chosen = {language: texts[language]} if language in texts else texts
    for tag, text in chosen.items():
        target = message.texts[tag]
        target.title, target.purpose, target.duration = text.title, text.purpose, text.duration
        for name in _LISTS:
            getattr(target, name).extend(getattr(text, name))
        for name in _OPTIONAL:
            setattr(target, name, getattr(text, name) or "")
    _time(notice.posted, message.posted)
    _time(notice.deadline, message.deadline)
    if notice.answer is not None:
        message.answer.decision = DECISIONS[notice.answer.decision]
        message.answer.by = notice.answer.by
        _time(notice.answer.time, message.answer.time)
    if notice.result is not None:
        message.result.success = notice.result.success
        message.result.message = notice.result.message
        _time(notice.result.time, message.result.time)
    return message


def _when(message: object) -> datetime:
    return datetime.fromtimestamp(timestamp_from_proto(message), UTC)  # type: ignore[arg-type]


def notice_from_proto(message: notices_pb2.UpdateNotice) -> PostedNotice:
    """A notice read from the wire.

    Raises:
        NoticeFormatError: the texts do not form a valid notice.
    """
    texts: dict[str, object] = {}
    for tag, text in message.texts.items():
        fields: dict[str, object] = {"title": text.title, "purpose": text.purpose, "duration": text.duration}
        fields.update({name: list(getattr(text, name)) for name in _LISTS})
        fields.update({name: getattr(text, name) or None for name in _OPTIONAL})
        texts[tag] = fields
    try:
        notice = Notice.model_validate({"consent_required": message.consent_required, "texts": texts})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()[:8]
        )
        raise NoticeFormatError(f"invalid notice: {problems}") from None
    answer = None
    if message.HasField("answer"):
        answer = Answer(
            decision_from_proto(message.answer.decision), message.answer.by, _when(message.answer.time)
        )
    result = None
    if message.HasField("result"):
        result = UpdateResult(message.result.success, message.result.message, _when(message.result.time))
    return PostedNotice(
        id=message.id,
        bundle=message.bundle,
        version=message.version,
        notice=notice,
        consent_required=message.consent_required,
        posted=_when(message.posted),
        deadline=_when(message.deadline),
        answer=answer,
        result=result,
    )

"""The ECU's update agent: receives a bundle, verifies and stages it into the inactive side of each slot group it
carries, activates it on trial, commits or rolls back, and records and signs what it did.

:mod:`~sdv.ota.agent.core` (``UpdateAgent``, the orchestrator), :mod:`~sdv.ota.agent.state` (states, transitions
and the persisted record, pure), :mod:`~sdv.ota.agent.config`, :mod:`~sdv.ota.agent.groups` (slot groups and
their boot selectors), :mod:`~sdv.ota.agent.boot`, :mod:`~sdv.ota.agent.slots`, :mod:`~sdv.ota.agent.unpack`,
:mod:`~sdv.ota.agent.transfer`, :mod:`~sdv.ota.agent.store` (the state directory),
:mod:`~sdv.ota.agent.records`, :mod:`~sdv.ota.agent.event_log` and :mod:`~sdv.ota.agent.event_store`.
"""

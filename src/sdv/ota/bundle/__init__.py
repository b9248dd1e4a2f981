"""The update bundle and everything that decides whether one may be installed, shared by the OTA server (which
builds, signs and checks bundles and trust roots) and the ECU (which verifies them before it stages a byte).

Pure modules, no I/O: :mod:`~sdv.ota.bundle.canonical` (the signed byte encoding), :mod:`~sdv.ota.bundle.keys`,
:mod:`~sdv.ota.bundle.manifest`, :mod:`~sdv.ota.bundle.format` (the container), :mod:`~sdv.ota.bundle.trust`
(roles, thresholds, rotation), :mod:`~sdv.ota.bundle.archive` (file-tree safety),
:mod:`~sdv.ota.bundle.trusted_time`, :mod:`~sdv.ota.bundle.rollback` (release counters),
:mod:`~sdv.ota.bundle.verifier`, :mod:`~sdv.ota.agent.report` (the ECU's signed version report) and
:mod:`~sdv.ota.bundle.config` (limits). :mod:`~sdv.ota.bundle.store` does the file I/O around them (key and
trust files, building and signing bundles). The format is specified in ``ota/bundle-format.md``.
"""

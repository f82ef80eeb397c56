"""What users measure on top of the geometric model: access and queueing delays, the 15-s global
scheduler, Starlink-like PoP assignment and load spread over satellites and beams.

Pure numpy/scipy (plus ``h3`` and, optionally, ``itur``); no scenario or CLI imports. Every
parameter that is not geometry lives in :mod:`starmesh.service.params` with its source and
uncertainty (see also ``data/PROVENANCE.md``).
"""

"""Data sets: one canonical manifest format (:mod:`vtr.data.manifest`) and a loader per source."""

"""DAW sessions: what faderwise reads of a producer's project and how advice goes back into it.

* :mod:`~faderwise.tools.daw.model` — the project model: tracks (a track is its position and id,
  never its name), folders, buses, VCAs, sends, the master, the pan law.
* :mod:`~faderwise.tools.daw.reaper` — REAPER ``.RPP`` files; :mod:`~faderwise.tools.daw.ardour` —
  Ardour ``.ardour`` sessions; :mod:`~faderwise.tools.daw.project` — reading either by its suffix.
* :mod:`~faderwise.tools.daw.mapping` — which bounced stem is which track, and how each reaches
  the mix (nothing counted twice).
* :mod:`~faderwise.tools.daw.export` — advice as fader moves, written into a new project or a table.
* :mod:`~faderwise.tools.daw.osc` — a running DAW's faders over OSC;
  :mod:`~faderwise.tools.daw.push` — plan → dry run → apply → undo of a push to it.

No audio maths here beyond dB and gains: the stems are read by :mod:`faderwise.tools.stem_files`.
"""

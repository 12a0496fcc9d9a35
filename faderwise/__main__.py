"""``python -m faderwise``: the same as the ``faderwise`` command (and what ``torchrun -m faderwise
train CONFIG`` or ``accelerate launch -m faderwise train CONFIG`` start in every process)."""

from faderwise.cli import main

raise SystemExit(main())

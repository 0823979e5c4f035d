"""``python -m fexa`` (also what ``torchrun -m fexa`` runs)."""

from fexa.cli.main import main

raise SystemExit(main())

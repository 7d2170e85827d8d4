"""`python -m esrgan` is the same as the `esrgan` command."""

from esrgan.cli import main

raise SystemExit(main())

"""``python -m ostiary.cli``."""

from ostiary.cli.main import main

main()

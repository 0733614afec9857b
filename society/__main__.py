"""`python -m society` runs the command-line interface."""

from society.cli import main

main()

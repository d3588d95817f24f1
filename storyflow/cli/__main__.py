"""`python -m storyflow.cli`: the same command line as `storyflow`."""

from storyflow.cli import main

main()

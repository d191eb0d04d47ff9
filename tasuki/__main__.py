"""``python -m tasuki`` is the ``tasuki`` command."""

from tasuki.cli import main

if __name__ == "__main__":  # not when a spawned process (the intake's taker) imports it
    main()

"""``python -m smolvla_ros.cli ...`` == ``smolvla-ros ...`` (used where no console script is
installed, e.g. a source checkout without ``make setup``)."""
import sys

from smolvla_ros.cli.main import main

sys.exit(main())

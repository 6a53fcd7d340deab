"""``python -m integr8scode_client``: the CLI."""

import sys

from integr8scode_client.cli.main import main

sys.exit(main())

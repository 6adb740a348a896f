"""``python -m stream_monitor`` — same as the ``stream-monitor`` command."""

from stream_monitor.commands import main

raise SystemExit(main())

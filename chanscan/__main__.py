from chanscan.cli import main

raise SystemExit(main())

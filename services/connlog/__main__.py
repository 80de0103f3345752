from connlog.cli import main

raise SystemExit(main())

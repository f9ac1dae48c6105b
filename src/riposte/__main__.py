from riposte.cli import main

raise SystemExit(main())

from mq.cli import main

raise SystemExit(main())

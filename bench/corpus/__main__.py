from bench.corpus.generate import main

raise SystemExit(main())

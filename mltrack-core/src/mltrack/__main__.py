from mltrack.cli import main

main()

from accord.entrypoints.cli import main

main()

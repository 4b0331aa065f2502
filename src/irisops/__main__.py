from irisops.cli import main

main()

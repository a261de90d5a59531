from labellint.cli import main

main()

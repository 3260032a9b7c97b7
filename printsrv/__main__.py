from printsrv.cli import main

main()

from ftstudy.cli.main import main

main()

from ftstudy.cli import main

main()

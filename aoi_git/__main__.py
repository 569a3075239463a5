from aoi_git.cli import main

main()

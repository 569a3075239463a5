from aoi_git.cli import main

main(prog_name="aoi")  # so `python -m aoi_git` reads _AOI_COMPLETE and says `aoi` in its usage

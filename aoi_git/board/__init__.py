"""`aoi board`: the org as a web page, read from the branch and updated live."""

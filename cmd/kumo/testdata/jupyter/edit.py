# edit.py NOTEBOOK TITLE CODE: replace the code of the cell with that title.
import sys, nbformat
nb = nbformat.read(sys.argv[1], 4)
for c in nb.cells:
    if c.metadata.get("title") == sys.argv[2]:
        c.source = sys.argv[3]
nbformat.write(nb, sys.argv[1])

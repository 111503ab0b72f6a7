# outputs.py NOTEBOOK: each code cell's outputs, a line each.
import sys, nbformat
nb = nbformat.read(sys.argv[1], 4)
i = 0
for c in nb.cells:
    if c.cell_type != "code":
        continue
    for o in c.outputs:
        if o.output_type == "stream":
            for line in o.text.splitlines():
                print("cell %d: stream %s" % (i, line))
        elif o.output_type in ("display_data", "execute_result"):
            print("cell %d: %s" % (i, o.data["text/plain"]))
        elif o.output_type == "error":
            print("cell %d: error %s %s" % (i, o.ename, o.evalue))
    i += 1

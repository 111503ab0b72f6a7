# streams.py NOTEBOOK: what the cells printed, a line each, without
# kumo's displays (how a frontend cut the text into messages aside).
import sys, nbformat
for i, c in enumerate(nbformat.read(sys.argv[1], 4).cells):
    for o in c.get("outputs", []):
        if o.output_type == "stream":
            for line in o.text.splitlines():
                print(i, o.name, line)

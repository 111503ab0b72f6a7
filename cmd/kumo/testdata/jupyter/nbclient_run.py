# nbclient_run.py IN OUT: execute a notebook headless with nbclient, as
# papermill and CI jobs do, on the kumo kernel, in the notebook's folder.
import os, sys, nbformat, nbclient
nb = nbformat.read(sys.argv[1], 4)
client = nbclient.NotebookClient(nb, kernel_name="kumo", timeout=900, resources={"metadata": {"path": os.path.dirname(os.path.abspath(sys.argv[1]))}})
client.execute()
nbformat.write(nb, sys.argv[2])
print("cells: ok")

"""The vendor REST shapes: one folder per shape (``meraki/``, ``mojo/``,
``zequenze/``), each holding its parameters (``params.py``), its record
mapping (``records.py``), its projection (``projection.py``), its REST
servicer (``servicer.py``) and, for a vendor connlog pulls from, its sync
fetcher (``sync.py``). ``rest.py`` is what every shape's REST edge shares;
``registry.py`` lists the shapes, and everything that differs per shape
(which process serves it, the gateway's routes and error formats, the sync
dispatch, the CLI) is derived from it."""

"""Scaling beyond one process on Ray: archive scoring (Ray Data) and online serving (Ray Serve).

Both call :mod:`core.scoring`, the same path as ``python -m core.predict``, so a file gets the
same answer from the CLI, an archive job and the Serve deployment. ``core`` never imports this
package (or Ray): the app and the CLI run without it.
"""

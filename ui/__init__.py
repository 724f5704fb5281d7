"""What the app's pages share, beside them and never a page: the session's state and cached
loaders (``state``), the sidebar and shared widgets (``widgets``), the Plotly viewer (``viewer``)
and the sample gallery (``gallery``). The pages themselves are ``pages/``."""

"""The Streamlit dashboard over run folders: data loading (`files`, `catalog`, `queries`), charts, pages, and
the `society dashboard` command (`command`)."""

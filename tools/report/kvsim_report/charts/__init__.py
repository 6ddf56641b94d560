"""The charts, drawn with matplotlib (imported only once every input has been read and checked,
by charts.mpl.plt()); each chart function returns PNG bytes."""

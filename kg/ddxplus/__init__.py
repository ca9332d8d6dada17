"""DDXPlus as domain data: the release's definitions, patient records (English or French
release), the mapping of its conditions onto the graph's diseases, the counts a calibration
learns from, and the maintainer's builder of the shipped DDXPlus files.

Both ``medkg kg calibrate`` and the DDX evaluation (eval/ddx) read records through here.
"""

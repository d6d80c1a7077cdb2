#!/usr/bin/env python3
"""Writes real tabular datasets as a folder of CSV files that workbench/tabular.h reads
(one dataset per FILE.csv: a header line, numeric feature columns, the integer class label
last; no missing values, no categorical columns).

  python3 reference/export_tabular.py OUT_DIR            the datasets scikit-learn ships (offline)
  python3 reference/export_tabular.py OUT_DIR --openml   the paper's OpenML selection (network)

Offline (`pip install scikit-learn`): five binary tasks from the real datasets bundled with
scikit-learn: breast_cancer (malignant vs benign), digits_even (even vs odd digit), iris_versicolor
(versicolor vs the rest), wine_class0 (cultivar 0 vs the rest) and diabetes_high (disease
progression above its median).

--openml (`pip install openml pandas`, needs network) selects datasets as the paper's
data script does: at least 5 numeric features and at most 20 features, at most 2 classes with the
minority at least half the majority, 1000 to 10000 instances, no missing values, a categorical
target, names without 'fri', one dataset per name. For each, categorical feature columns are
dropped, '?' counts as missing, rows without a label are dropped, then columns and rows with
missing values. The label becomes its category code. Standardizing and the 95/5 split are left
to the loader (it standardizes over all rows and splits with its seed, as the paper's script does
with scikit-learn's StandardScaler and train_test_split(test_size=0.05)).

Files are written whole (FILE.csv.tmp, then renamed); an existing OUT_DIR/FILE.csv is not
overwritten unless --force is given.
"""
import argparse
import os
import sys


def write_csv(out_dir, name, header, rows, labels, force):
    path = os.path.join(out_dir, name + ".csv")
    if os.path.exists(path) and not force:
        sys.exit(f"export_tabular: {path} exists; give --force to replace it")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(",".join(header + ["label"]) + "\n")
        for row, label in zip(rows, labels):
            f.write(",".join(repr(float(v)) for v in row) + f",{int(label)}\n")
    os.replace(tmp, path)
    print(f"wrote {path}: {len(labels)} rows, {len(header)} features, classes {sorted(set(int(l) for l in labels))}")


def clean_header(names):
    return [str(n).replace(",", "_").replace("\n", " ") for n in names]


def export_sklearn(out_dir, force):
    try:
        import numpy as np
        from sklearn import datasets
    except ImportError:
        sys.exit("export_tabular: needs scikit-learn (pip install scikit-learn)")
    bc = datasets.load_breast_cancer()
    write_csv(out_dir, "breast_cancer", clean_header(bc.feature_names), bc.data, bc.target, force)
    dg = datasets.load_digits()
    keep = dg.data.std(axis=0) > 0            # pixels that are 0 in every image carry nothing
    write_csv(out_dir, "digits_even", [f"pixel{i}" for i in np.where(keep)[0]], dg.data[:, keep], dg.target % 2 == 0, force)
    ir = datasets.load_iris()
    write_csv(out_dir, "iris_versicolor", clean_header(ir.feature_names), ir.data, ir.target == 1, force)
    wn = datasets.load_wine()
    write_csv(out_dir, "wine_class0", clean_header(wn.feature_names), wn.data, wn.target == 0, force)
    db = datasets.load_diabetes()
    write_csv(out_dir, "diabetes_high", clean_header(db.feature_names), db.data, db.target > np.median(db.target), force)


def export_openml(out_dir, force):
    try:
        import numpy as np
        import openml
        import pandas as pd
    except ImportError:
        sys.exit("export_tabular: --openml needs openml and pandas (pip install openml pandas) and network access")
    df = openml.datasets.list_datasets(output_format="dataframe").dropna()
    df = df[(df.NumberOfNumericFeatures >= 5) & (df.NumberOfFeatures <= 20) & (df.NumberOfClasses <= 2)
            & (df.NumberOfInstances >= 1000) & (df.NumberOfInstances <= 10000)
            & (df.NumberOfMissingValues == 0) & (df.NumberOfInstancesWithMissingValues == 0)
            & (df.MinorityClassSize >= df.MajorityClassSize / 2)]
    seen = set()
    for did in map(int, df.did.values):
        try:
            ds = openml.datasets.get_dataset(did, download_data=False, download_qualities=False,
                                             download_features_meta_data=False)
            if ds.name in seen or "fri" in ds.name:
                continue
            seen.add(ds.name)
            X, y, categorical, names = ds.get_data(target=ds.default_target_attribute)
        except Exception as e:  # an inactive or broken dataset: say so and go on
            print(f"skipped OpenML {did}: {e}")
            continue
        if y is None or y.dtype.name != "category":
            continue
        numeric = [i for i, c in enumerate(categorical) if not c]
        Xy = pd.concat([X.iloc[:, numeric], y], axis=1).replace("?", np.nan)
        Xy = Xy[Xy.iloc[:, -1].notna()].dropna(axis=1).dropna()
        if Xy.shape[0] == 0 or Xy.shape[1] < 2:
            continue
        codes = Xy.iloc[:, -1].cat.codes.values
        write_csv(out_dir, f"openml_{did}_{ds.name}".replace("/", "_"), clean_header(Xy.columns[:-1]),
                  Xy.iloc[:, :-1].astype(float).values, codes, force)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--openml", action="store_true", help="the paper's OpenML selection (network)")
    ap.add_argument("--force", action="store_true", help="replace existing files")
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    (export_openml if a.openml else export_sklearn)(a.out_dir, a.force)


if __name__ == "__main__":
    main()

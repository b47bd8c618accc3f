#!/usr/bin/env bash
# Fetch a real data set from its official location into DIR (default: ./data/<dataset>, where jobs with an empty
# data_dir look), then prepare it with:  fedscale-halor prepare <dataset> --data-dir DIR
#
# usage: dataset/download.sh <digits|cifar10|fashion_mnist|femnist|google_speech|synthetic> [DIR]
set -euo pipefail

usage() {
    echo "usage: $0 <digits|cifar10|fashion_mnist|femnist|google_speech|synthetic> [DIR]" >&2
    exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
DATASET="$1"
case "$DATASET" in
    digits | cifar10 | fashion_mnist | femnist | google_speech | synthetic) ;;
    *) echo "error: unknown data set '$DATASET'" >&2; usage ;;
esac
DIR="${2:-./data/${DATASET}}"

CIFAR10_URL="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5="c58f30108f718f92721af3b95e74349a"
FASHION_MNIST_BASE="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
FEMNIST_URL="https://fedscale.eecs.umich.edu/dataset/femnist.tar.gz"
SPEECH_URL="http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"

fetch() {  # fetch URL FILE: curl when present, else wget; resumes a partial download
    if command -v curl > /dev/null; then
        curl --fail --location --continue-at - --output "$2" "$1"
    elif command -v wget > /dev/null; then
        wget --continue --output-document="$2" "$1"
    else
        echo "error: neither curl nor wget is installed" >&2
        exit 1
    fi
}

check_md5() {  # check_md5 FILE EXPECTED
    if ! command -v md5sum > /dev/null; then
        echo "warning: md5sum not found; $1 is not verified" >&2
        return
    fi
    actual="$(md5sum "$1" | cut -d' ' -f1)"
    if [ "$actual" != "$2" ]; then
        echo "error: $1 has MD5 $actual, expected $2; delete it and run again" >&2
        exit 1
    fi
}

mkdir -p "$DIR"
case "$DATASET" in
    digits)
        echo "digits ships with scikit-learn: nothing to download."
        ;;
    synthetic)
        echo "synthetic is generated from a seed: nothing to download (optional spec: $DIR/synthetic.json)."
        ;;
    cifar10)
        if [ ! -f "$DIR/cifar-10-batches-py/test_batch" ]; then
            fetch "$CIFAR10_URL" "$DIR/cifar-10-python.tar.gz"
            check_md5 "$DIR/cifar-10-python.tar.gz" "$CIFAR10_MD5"
            tar -xf "$DIR/cifar-10-python.tar.gz" -C "$DIR"
            rm -f "$DIR/cifar-10-python.tar.gz"
        fi
        ;;
    fashion_mnist)
        while read -r name md5; do
            if [ ! -f "$DIR/$name" ]; then
                fetch "$FASHION_MNIST_BASE/$name" "$DIR/$name.part"
                check_md5 "$DIR/$name.part" "$md5"
                mv "$DIR/$name.part" "$DIR/$name"
            fi
        done << 'EOF'
train-images-idx3-ubyte.gz 8d4fb7e6c68d591d4c3dfef9ec88bf0d
train-labels-idx1-ubyte.gz 25c81989df183df01b3e8a0aad5dffbe
t10k-images-idx3-ubyte.gz bef4ecab320f06d8554ea6380940ec79
t10k-labels-idx1-ubyte.gz bb300cfdad3c16e7a12a480ee83cd310
EOF
        ;;
    femnist)
        if [ ! -f "$DIR/client_data_mapping/train.csv" ]; then
            fetch "$FEMNIST_URL" "$DIR/femnist.tar.gz"
            # The archive holds one top folder, femnist/: unpack its contents straight into DIR.
            tar -xf "$DIR/femnist.tar.gz" -C "$DIR" --strip-components=1
            rm -f "$DIR/femnist.tar.gz"
        fi
        ;;
    google_speech)
        if [ ! -f "$DIR/testing_list.txt" ]; then
            fetch "$SPEECH_URL" "$DIR/speech_commands_v0.02.tar.gz"
            tar -xf "$DIR/speech_commands_v0.02.tar.gz" -C "$DIR"
            rm -f "$DIR/speech_commands_v0.02.tar.gz"
        fi
        ;;
esac

echo "$DATASET is in $DIR; next: fedscale-halor prepare $DATASET --data-dir $DIR"

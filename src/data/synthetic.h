/*
 * synthetic.h: a small procedurally generated image dataset, SYNTHETIC, for `beard demo`
 * on a machine with no data at all. It is not CIFAR-10 and no figure computed on it says
 * anything about a real model: it exists so that the whole pipeline (train, attack,
 * metrics) can be seen working in a minute, anywhere.
 *
 * Ten classes of simple shapes (disc, ring, square, frame, horizontal bar, vertical bar,
 * plus, cross, triangle, two dots), each drawn at a random position and size, in a random
 * bright colour on a random dark background, with pixel noise: 3 x 16 x 16 uint8 images.
 * Image i of a split has class i mod 10 and is drawn from its own Philox stream, so a
 * (seed, split, i) triple always gives the same image.
 */
#ifndef BEARD_SYNTHETIC_H
#define BEARD_SYNTHETIC_H

#include "dataset.h"

// shape and Normalize constants (mean 0.5, std 0.25) of the synthetic dataset
const DatasetInfo *synthetic_info(void);

// n images of the train (train != 0) or test split; dataset_free afterwards
int synthetic_make(Dataset *ds, int n, int train, uint64_t seed, Err *e);

#endif

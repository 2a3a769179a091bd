"""Task datasets: the embedded synthetic shapes set and readers for COCO, Pascal VOC and ADE20k."""

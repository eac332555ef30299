"""Evaluation metrics: ``image`` (PSNR, SSIM, LPIPS-VGG when its weights are local), ``mesh`` (accuracy /
completion / F-score), ``semantic`` (mIoU). Import from the submodules."""

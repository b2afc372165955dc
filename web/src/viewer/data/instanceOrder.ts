// Reading order of a series' instances (InstanceNumber, then position along
// the slice normal), shared by the stack and the pre-Cornerstone preview.
import { num, nums, T, type DicomJson } from './dicomJson';

export function positionAlongNormal(inst: DicomJson): number {
  const iop = nums(inst, T.ImageOrientationPatient);
  const ipp = nums(inst, T.ImagePositionPatient);
  if (iop.length !== 6 || ipp.length !== 3) return NaN;
  const n = [iop[1] * iop[5] - iop[2] * iop[4], iop[2] * iop[3] - iop[0] * iop[5], iop[0] * iop[4] - iop[1] * iop[3]];
  return n[0] * ipp[0] + n[1] * ipp[1] + n[2] * ipp[2];
}

/** A sorted copy of the instances in reading order. */
export function sortInstances(instances: DicomJson[]): DicomJson[] {
  return [...instances].sort((a, b) => {
    const d = (num(a, T.InstanceNumber) || 0) - (num(b, T.InstanceNumber) || 0);
    if (d !== 0) return d;
    return (positionAlongNormal(b) || 0) - (positionAlongNormal(a) || 0);
  });
}

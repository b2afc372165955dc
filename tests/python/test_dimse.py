"""DIMSE black-box tests: pynetdicom, an independent DICOM network
implementation, against yunying's DICOM listener.

pynetdicom plays the modality, the workstation and the remote archive: it
echoes, stores, queries, retrieves (C-GET on its own association, C-MOVE to a
pynetdicom storage SCP), and asks for storage commitment (report on the same
association, or on a new one to its registered address). Data sets are built
with pydicom, small, with fresh UIDs, so every test stands on its own data.
"""
import io
import os
import queue
import threading
import time

import pydicom
import pynetdicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    StorageCommitmentPushModel,
    StorageCommitmentPushModelInstance,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

CALLED = "YUNYING"  # the server's AE title (dicom.ae_title's default)
LOCAL = "127.0.0.1"


# --- helpers ---------------------------------------------------------------

def register(server, title, allow="store,query,retrieve", host=None, port=None):
    args = ["ae", "add", title, "--institution", "DEFAULT", "--allow", allow]
    if host is not None:
        args += ["--host", host, "--port", str(port)]
    server.cli(*args)


def new_ae(title):
    ae = AE(ae_title=title)
    ae.acse_timeout = 10
    ae.dimse_timeout = 30
    ae.network_timeout = 30
    return ae


def associate(server, ae, **kwargs):
    assoc = ae.associate(LOCAL, server.dicom_port, ae_title=CALLED, **kwargs)
    assert assoc.is_established, f"association of {ae.ae_title} not established (rejected={assoc.is_rejected})"
    return assoc


def ct(study, series, number, patient_name, patient_id, description="", rows=16, cols=16):
    """A small CT image with its own SOP instance UID and random 16-bit pixels."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "M"
    ds.StudyDate = "20250310"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC" + patient_id[-6:]
    ds.StudyDescription = description
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PixelData = os.urandom(rows * cols * 2)
    return ds


def store_all(server, title, datasets):
    """C-STOREs the data sets on one association; returns their statuses."""
    ae = new_ae(title)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = associate(server, ae)
    try:
        return [assoc.send_c_store(ds).Status for ds in datasets]
    finally:
        assoc.release()


def find(assoc, identifier, model):
    """C-FIND: the identifiers of the pending responses; asserts a final success."""
    matches, final = [], None
    for status, ident in assoc.send_c_find(identifier, model):
        assert status is not None and "Status" in status, "no C-FIND response (association aborted or timed out)"
        if status.Status in (0xFF00, 0xFF01):
            matches.append(ident)
        else:
            final = status
    assert final is not None and final.Status == 0x0000, f"C-FIND final status {final}"
    return matches


def query(level, **keys):
    q = Dataset()
    q.QueryRetrieveLevel = level
    for k, v in keys.items():
        setattr(q, k, v)
    return q


def find_assoc(server, title):
    ae = new_ae(title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)
    return associate(server, ae)


@pytest.fixture(scope="module")
def scu(yunying):
    """A registered AE title allowed to store, query and retrieve."""
    register(yunying, "PYSCU")
    return "PYSCU"


# --- C-ECHO and association admission ---------------------------------------

def test_echo_registered_and_unregistered_rejected(yunying):
    register(yunying, "PYECHO", allow="store")
    ae = new_ae("PYECHO")
    ae.add_requested_context(Verification)
    assoc = associate(yunying, ae)
    status = assoc.send_c_echo()
    assoc.release()
    assert status.Status == 0x0000

    stranger = new_ae("PYSTRANGER")
    stranger.add_requested_context(Verification)
    assoc = stranger.associate(LOCAL, yunying.dicom_port, ae_title=CALLED)
    assert assoc.is_rejected and not assoc.is_established
    rj = assoc.acceptor.primitive
    # Rejected permanent (1), by the service user (1), calling AE title not recognized (3).
    assert (rj.result, rj.result_source, rj.diagnostic) == (1, 1, 3)


# --- C-STORE and C-FIND ------------------------------------------------------

def test_store_then_find_at_every_level(yunying, scu):
    study, s1, s2 = generate_uid(), generate_uid(), generate_uid()
    pid = "PYD-FIND-1"
    name = "Wang^XiaoMing=王^小明"
    sent = [ct(study, s1, 1, name, pid, "胸部CT平扫"), ct(study, s1, 2, name, pid, "胸部CT平扫"),
            ct(study, s2, 1, name, pid, "胸部CT平扫")]
    sent[2].SeriesNumber = 2
    assert store_all(yunying, scu, sent) == [0x0000] * 3

    assoc = find_assoc(yunying, scu)
    try:
        # STUDY level, study root.
        m = find(assoc, query("STUDY", StudyInstanceUID=study, PatientName="", PatientID="", StudyDate="",
                              StudyDescription="", AccessionNumber="", ModalitiesInStudy="",
                              NumberOfStudyRelatedSeries="", NumberOfStudyRelatedInstances=""),
                 StudyRootQueryRetrieveInformationModelFind)
        assert len(m) == 1
        st = m[0]
        assert st.QueryRetrieveLevel == "STUDY"
        assert st.StudyInstanceUID == study
        assert str(st.PatientName) == name and st.PatientName.ideographic == "王^小明"
        assert st.PatientID == pid
        assert st.StudyDate == "20250310"
        assert st.StudyDescription == "胸部CT平扫"
        assert st.AccessionNumber == sent[0].AccessionNumber
        ms = st.ModalitiesInStudy
        assert (list(ms) if isinstance(ms, pydicom.multival.MultiValue) else [ms]) == ["CT"]
        assert int(st.NumberOfStudyRelatedSeries) == 2
        assert int(st.NumberOfStudyRelatedInstances) == 3

        # SERIES level.
        m = find(assoc, query("SERIES", StudyInstanceUID=study, SeriesInstanceUID="", Modality="", SeriesNumber="",
                              NumberOfSeriesRelatedInstances=""),
                 StudyRootQueryRetrieveInformationModelFind)
        got = {x.SeriesInstanceUID: (x.Modality, int(x.SeriesNumber), int(x.NumberOfSeriesRelatedInstances)) for x in m}
        assert got == {s1: ("CT", 1, 2), s2: ("CT", 2, 1)}

        # IMAGE level.
        m = find(assoc, query("IMAGE", StudyInstanceUID=study, SeriesInstanceUID=s1, SOPInstanceUID="", SOPClassUID="",
                              InstanceNumber=""),
                 StudyRootQueryRetrieveInformationModelFind)
        got = {x.SOPInstanceUID: (x.SOPClassUID, int(x.InstanceNumber)) for x in m}
        assert got == {sent[0].SOPInstanceUID: (CTImageStorage, 1), sent[1].SOPInstanceUID: (CTImageStorage, 2)}

        # PATIENT level, patient root.
        m = find(assoc, query("PATIENT", PatientID=pid, PatientName="", PatientBirthDate="", PatientSex="",
                              NumberOfPatientRelatedStudies="", NumberOfPatientRelatedInstances=""),
                 PatientRootQueryRetrieveInformationModelFind)
        assert len(m) == 1
        p = m[0]
        assert p.PatientID == pid and str(p.PatientName) == name
        assert (p.PatientBirthDate, p.PatientSex) == ("19800101", "M")
        assert int(p.NumberOfPatientRelatedStudies) == 1
        assert int(p.NumberOfPatientRelatedInstances) == 3

        # Wildcards: on the ideographic name (UTF-8 query), and on the patient ID.
        m = find(assoc, query("STUDY", SpecificCharacterSet="ISO_IR 192", PatientName="王*", StudyInstanceUID="",
                              PatientID=""),
                 StudyRootQueryRetrieveInformationModelFind)
        assert [(x.StudyInstanceUID, x.PatientID) for x in m] == [(study, pid)]
        m = find(assoc, query("STUDY", PatientID="PYD-FIND-?", StudyInstanceUID=""),
                 StudyRootQueryRetrieveInformationModelFind)
        assert [x.StudyInstanceUID for x in m] == [study]
        m = find(assoc, query("STUDY", SpecificCharacterSet="ISO_IR 192", PatientName="李*", StudyInstanceUID=""),
                 StudyRootQueryRetrieveInformationModelFind)
        assert m == []
    finally:
        assoc.release()


def with_media_storage_uid(ds, uid):
    """The Part-10 bytes of `ds` with another Media Storage SOP Instance UID in its file meta."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    raw = buf.getvalue()
    meta = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True).file_meta
    data_start = 132 + 12 + meta.FileMetaInformationGroupLength
    meta.MediaStorageSOPInstanceUID = uid
    out = DicomBytesIO()
    write_file_meta_info(out, meta, enforce_standard=True)
    return raw[:132] + out.getvalue() + raw[data_start:]


def test_store_with_mismatched_sop_instance_uid_is_refused(yunying, scu, tmp_path, monkeypatch):
    """The command's Affected SOP Instance UID differs from the data set's. With
    STORE_SEND_CHUNKED_DATASET, pynetdicom sends a file's data set bytes as they
    are and takes the command's UIDs from the file meta, which we falsify."""
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)
    study, series = generate_uid(), generate_uid()
    ds = ct(study, series, 1, "Zhao^Liu=赵^六", "PYD-MISMATCH")
    announced = generate_uid()
    path = tmp_path / "mismatch.dcm"
    path.write_bytes(with_media_storage_uid(ds, announced))
    on_disk = pydicom.dcmread(path)
    assert (on_disk.file_meta.MediaStorageSOPInstanceUID, on_disk.SOPInstanceUID) == (announced, ds.SOPInstanceUID)

    good = ct(generate_uid(), generate_uid(), 1, "Zhao^Liu=赵^六", "PYD-MISMATCH-OK")
    ae = new_ae(scu)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = associate(yunying, ae)
    try:
        status = assoc.send_c_store(str(path))
        assert status is not None and "Status" in status, "no C-STORE response"
        assert 0xA900 <= status.Status <= 0xA9FF or 0xC000 <= status.Status <= 0xCFFF, hex(status.Status)
        # The association is still usable.
        assert assoc.send_c_store(good).Status == 0x0000
    finally:
        assoc.release()

    assoc = find_assoc(yunying, scu)
    try:
        for uid in (announced, str(ds.SOPInstanceUID)):
            assert find(assoc, query("IMAGE", StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=uid),
                        StudyRootQueryRetrieveInformationModelFind) == []
        assert find(assoc, query("STUDY", StudyInstanceUID=study), StudyRootQueryRetrieveInformationModelFind) == []
        assert find(assoc, query("PATIENT", PatientID="PYD-MISMATCH"), PatientRootQueryRetrieveInformationModelFind) == []
    finally:
        assoc.release()


# --- Storage commitment ------------------------------------------------------

def commitment_request(stored, missing_uid):
    req = Dataset()
    req.TransactionUID = generate_uid()
    items = []
    for cls, uid in [(ds.SOPClassUID, ds.SOPInstanceUID) for ds in stored] + [(CTImageStorage, missing_uid)]:
        item = Dataset()
        item.ReferencedSOPClassUID = cls
        item.ReferencedSOPInstanceUID = uid
        items.append(item)
    req.ReferencedSOPSequence = items
    return req


def check_report(event_type, info, req, stored, missing_uid):
    assert event_type == 2  # some failures
    assert info.TransactionUID == req.TransactionUID
    assert {(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID) for i in info.ReferencedSOPSequence} == \
        {(ds.SOPClassUID, ds.SOPInstanceUID) for ds in stored}
    assert len(info.FailedSOPSequence) == 1
    failed = info.FailedSOPSequence[0]
    assert (failed.ReferencedSOPClassUID, failed.ReferencedSOPInstanceUID) == (CTImageStorage, missing_uid)
    assert failed.FailureReason == 0x0112
    assert info.get("RetrieveAETitle", CALLED) == CALLED


def test_storage_commitment_report_on_the_same_association(yunying, scu):
    study, series = generate_uid(), generate_uid()
    stored = [ct(study, series, n, "Qian^Er=钱^二", "PYD-COMMIT-1") for n in (1, 2)]
    missing = generate_uid()
    reports = queue.Queue()

    def on_report(event):
        reports.put((event.assoc, event.request.EventTypeID, event.event_information))
        return 0x0000, None

    ae = new_ae(scu)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = associate(yunying, ae, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    try:
        assert [assoc.send_c_store(ds).Status for ds in stored] == [0x0000, 0x0000]
        req = commitment_request(stored, missing)
        status, _ = assoc.send_n_action(req, 1, StorageCommitmentPushModel, StorageCommitmentPushModelInstance)
        assert status is not None and status.Status == 0x0000, status
        try:
            on, event_type, info = reports.get(timeout=10)
        except queue.Empty:
            pytest.fail("no N-EVENT-REPORT on the association within 10 s")
        assert on is assoc
        check_report(event_type, info, req, stored, missing)
    finally:
        assoc.release()


def test_storage_commitment_report_on_a_new_association(yunying):
    """The requestor releases without confirming the report: it arrives on a new
    association from yunying (SCP role of the N-EVENT-REPORT, by role selection)
    to the requestor's registered address."""
    title = "PYCOMMIT2"
    delivered = queue.Queue()

    def on_delivered(event):
        # The context as agreed on this association, from pynetdicom's (the acceptor's) side.
        cx = next(c for c in event.assoc.accepted_contexts if c.context_id == event.context.context_id)
        delivered.put((event.assoc.requestor.ae_title, (cx.as_scu, cx.as_scp), event.request.EventTypeID,
                       event.event_information))
        return 0x0000, None

    listener = new_ae(title)
    # Acceptor side of role selection: yunying proposes SCU=0, SCP=1 (it is the
    # SCP, sending the N-EVENT-REPORT); scp_role=True accepts that it acts as
    # SCP, scu_role=False refuses it the SCU role: pynetdicom acts as SCU.
    listener.add_supported_context(StorageCommitmentPushModel, scu_role=False, scp_role=True)
    server = listener.start_server((LOCAL, 0), block=False, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_delivered)])
    try:
        register(yunying, title, allow="store", host=LOCAL, port=server.server_address[1])
        study, series = generate_uid(), generate_uid()
        stored = [ct(study, series, n, "Sun^Qi=孙^七", "PYD-COMMIT-2") for n in (1, 2)]
        missing = generate_uid()

        released = threading.Event()
        early = []

        def on_report_before_release(event):
            # The report may reach us on the first association before we
            # release: hold the answer until we have released, as a requestor
            # going away does.
            early.append(event.request.EventTypeID)
            released.wait(10)
            return 0x0000, None

        ae = new_ae(title)
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = associate(yunying, ae, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report_before_release)])
        try:
            assert [assoc.send_c_store(ds).Status for ds in stored] == [0x0000, 0x0000]
            req = commitment_request(stored, missing)
            status, _ = assoc.send_n_action(req, 1, StorageCommitmentPushModel, StorageCommitmentPushModelInstance)
            assert status is not None and status.Status == 0x0000, status
        finally:
            assoc.release()
            released.set()
        started = time.monotonic()
        try:
            calling, roles, event_type, info = delivered.get(timeout=10)
        except queue.Empty:
            pytest.fail("no N-EVENT-REPORT on a new association within 10 s")
        print(f"report delivered {time.monotonic() - started:.2f} s after release (first association saw {early})")
        assert calling == CALLED
        assert roles == (True, False), "yunying must have proposed and obtained the SCP role (we act as SCU only)"
        check_report(event_type, info, req, stored, missing)
    finally:
        server.shutdown()


# --- C-GET and C-MOVE --------------------------------------------------------

def sample_ct_study(n=3):
    """Copies of pydicom's CT_small.dcm (a real CT) under one new study, with new UIDs."""
    study, series = generate_uid(), generate_uid()
    out = []
    for i in range(n):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        ds.PatientID = "PYD-RETRIEVE"
        # Distinct pixels per instance, so a mix-up cannot pass.
        px = bytearray(ds.PixelData)
        px[:16] = os.urandom(16)
        ds.PixelData = bytes(px)
        out.append(ds)
    return study, out


def test_c_get_returns_every_instance_bit_exact(yunying, scu):
    study, sent = sample_ct_study(3)
    assert store_all(yunying, scu, sent) == [0x0000] * 3

    received = []

    def on_store(event):
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return 0x0000

    ae = new_ae(scu)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = associate(yunying, ae, ext_neg=[build_role(CTImageStorage, scp_role=True)],
                      evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        responses = list(assoc.send_c_get(query("STUDY", StudyInstanceUID=study),
                                          StudyRootQueryRetrieveInformationModelGet))
    finally:
        assoc.release()
    final = responses[-1][0]
    assert final is not None and final.Status == 0x0000, final
    assert final.NumberOfCompletedSuboperations == 3
    assert final.get("NumberOfFailedSuboperations", 0) == 0
    by_uid = {ds.SOPInstanceUID: ds for ds in received}
    assert len(received) == 3 and set(by_uid) == {ds.SOPInstanceUID for ds in sent}
    for ds in sent:
        back = by_uid[ds.SOPInstanceUID]
        assert back.PixelData == ds.PixelData, ds.SOPInstanceUID
        assert back.StudyInstanceUID == study and back.PatientName == ds.PatientName


def test_c_move_to_registered_destination_and_unknown_destination(yunying, scu):
    study, sent = sample_ct_study(2)
    assert store_all(yunying, scu, sent) == [0x0000] * 2

    received = []

    def on_store(event):
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append((event.assoc.requestor.ae_title, event.request.MoveOriginatorApplicationEntityTitle, ds))
        return 0x0000

    dest = new_ae("PYDEST")
    dest.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    server = dest.start_server((LOCAL, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        register(yunying, "PYDEST", allow="store", host=LOCAL, port=server.server_address[1])
        register(yunying, "PYNOADDR", allow="store")  # registered without host and port

        ae = new_ae(scu)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = associate(yunying, ae)
        try:
            q = query("STUDY", StudyInstanceUID=study)
            responses = list(assoc.send_c_move(q, "PYDEST", StudyRootQueryRetrieveInformationModelMove))
            final = responses[-1][0]
            assert final is not None and final.Status == 0x0000, final
            assert final.NumberOfCompletedSuboperations == 2
            for unknown in ("NOWHERE", "PYNOADDR"):
                responses = list(assoc.send_c_move(q, unknown, StudyRootQueryRetrieveInformationModelMove))
                final = responses[-1][0]
                assert final is not None and final.Status == 0xA801, (unknown, final)
        finally:
            assoc.release()
    finally:
        server.shutdown()

    assert len(received) == 2
    by_uid = {ds.SOPInstanceUID: (calling, originator, ds) for calling, originator, ds in received}
    assert set(by_uid) == {ds.SOPInstanceUID for ds in sent}
    for ds in sent:
        calling, originator, back = by_uid[ds.SOPInstanceUID]
        assert calling == CALLED and originator == scu
        assert back.PixelData == ds.PixelData

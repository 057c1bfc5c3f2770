namespace ClusterSync.Training.Tests.Workload;

public sealed class ImporterTests
{
    private const string LuflowHeader = "avg_ipt,bytes_in,bytes_out,dest_ip,dest_port,entropy,num_pkts_out,num_pkts_in,proto,src_ip,src_port,time_end,time_start,total_entropy,label,duration";

    [Fact]
    public void Luflow_Traps_PaddedMicrosecondsENotationEmptyPortsAsNumbers()
    {
        var csv = LuflowHeader + "\n"
            // time_start written without trailing zeros: 160807980977 -> 1608079809770000 us.
            + "2547.27,1318,24674,786,9200,1.69,11,10,6,786,56320,160807983780185,160807980977,44161.14,benign,28.024815\n"
            + "0,0,84,786,\"\",0,1,0,1,15169,\"\",1608079826910548,1608079826897728,0,outlier,1.282E-2\n";
        var list = new List<TraceRecord>();
        LuflowImporter.ReadCsv(new StringReader(csv), "x.csv", list);
        Assert.Equal(2, list.Count);
        Assert.Equal(1608079809.77, list[0].StartUnixSeconds, 6);
        Assert.Equal(28.024815, list[0].DurationSeconds, 6);
        Assert.Equal("AS786", list[0].SourceAddress);
        Assert.Equal((ushort)9200, list[0].DestinationPort);
        Assert.Equal(24674, list[0].BytesOut);
        Assert.Equal(1, list[1].Protocol);
        Assert.Equal(0, list[1].SourcePort);
        Assert.Equal(0, list[1].DestinationPort);
        Assert.Equal("AS15169", list[1].SourceAddress);
        Assert.Equal(0.01282, list[1].DurationSeconds, 9);
    }

    [Fact]
    public void Luflow_BadTime_ErrorNamesFileLineAndField()
    {
        var csv = LuflowHeader + "\n" + "1,1,1,786,80,1,1,1,6,786,5000,1,12a4,1,benign,1\n";
        var ex = Assert.Throws<ConfigurationException>(() => LuflowImporter.ReadCsv(new StringReader(csv), "x.csv", []));
        Assert.Contains("x.csv:2: time_start: expected epoch microseconds", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Luflow_Zip_UnsortedRowsSortedAndSplitRecordsStitched()
    {
        string dir = Path.Combine(Path.GetTempPath(), "lf-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string zipPath = Path.Combine(dir, "day.zip");
            using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
            {
                using var w = new StreamWriter(zip.CreateEntry("day.csv").Open());
                w.WriteLine(LuflowHeader);
                // Second 30 s piece of a flow first (rows are unsorted), then the first piece, then another flow.
                w.WriteLine("1,10,20,786,22,1,1,1,6,100,40000,1600000060000000,1600000030500000,1,benign,29.5");
                w.WriteLine("1,10,20,786,22,1,1,1,6,100,40000,1600000030000000,1600000000000000,1,benign,30");
                w.WriteLine("1,10,20,786,53,1,1,1,17,100,40001,1600000001000000,1600000000900000,1,benign,0.1");
            }

            var list = LuflowImporter.Read(zipPath, stitch: true, out int stitched);
            Assert.Equal(1, stitched);
            Assert.Equal(2, list.Count);
            Assert.Equal(60, list.Single(r => r.DestinationPort == 22).DurationSeconds, 6);
            Assert.Equal(40, list.Single(r => r.DestinationPort == 22).BytesOut);
            Assert.Equal(3, LuflowImporter.Read(dir, stitch: false).Count);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Zeek_ConnLog_FieldsByHeaderUnsetAsZero()
    {
        var log = string.Join('\n',
            "#separator \\x09",
            "#set_separator\t,",
            "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\torig_pkts\tresp_pkts",
            "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tcount\tcount",
            "1600000000.123456\tC1\t10.0.0.5\t51000\t93.184.216.34\t443\ttcp\tssl\t12.5\t800\t90000\tSF\t20\t70",
            "1600000001.000000\tC2\t10.0.0.5\t51001\t8.8.8.8\t53\tudp\tdns\t-\t-\t-\tS0\t1\t0",
            "#close\t2020-09-13-12-26-41");
        var list = ZeekConnLogImporter.Read(new StringReader(log), "conn.log");
        Assert.Equal(2, list.Count);
        Assert.Equal(1600000000.123456, list[0].StartUnixSeconds, 6);
        Assert.Equal(12.5, list[0].DurationSeconds);
        Assert.Equal("10.0.0.5", list[0].SourceAddress);
        Assert.Equal((ushort)443, list[0].DestinationPort);
        Assert.Equal("ssl", list[0].Service);
        Assert.Equal(90000, list[0].BytesIn);
        Assert.Equal(17, list[1].Protocol);
        Assert.Equal(0, list[1].DurationSeconds);
        Assert.Equal(0, list[1].BytesOut);
    }

    [Fact]
    public void Zeek_UnknownTransport_ProtocolFromIpProtoPortsZero()
    {
        // Zeek 5+ writes 'unknown_transport' for IP protocols other than TCP, UDP and ICMP (IGMP here), with ip_proto.
        var log = string.Join('\n',
            "#separator \\x09",
            "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\tip_proto",
            "1754306946.5\tC1\t192.168.64.1\t0\t224.0.0.1\t0\tunknown_transport\t-\t60.0\t2",
            "1754306947.5\tC2\t192.168.64.6\t5353\t224.0.0.251\t5353\tudp\tdns\t0.79\t17");
        var list = ZeekConnLogImporter.Read(new StringReader(log), "conn.log");
        Assert.Equal(2, list.Count);
        Assert.Equal(2, list[0].Protocol);
        Assert.Equal((ushort)0, list[0].SourcePort);
        Assert.Equal(60.0, list[0].DurationSeconds);
        Assert.Equal(17, list[1].Protocol);
        Assert.Equal((ushort)5353, list[1].DestinationPort);

        var without = string.Join('\n',
            "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto",
            "1754306946.5\tC1\t192.168.64.1\t0\t224.0.0.1\t0\tunknown_transport");
        var ex = Assert.Throws<ConfigurationException>(() => ZeekConnLogImporter.Read(new StringReader(without), "conn.log"));
        Assert.Contains("conn.log:2: proto:", ex.Message, StringComparison.Ordinal);
        Assert.Contains("ip_proto", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Zeek_NoFieldsHeader_ErrorNamesFile()
    {
        var ex = Assert.Throws<ConfigurationException>(() => ZeekConnLogImporter.Read(new StringReader("1\t2\t3\n"), "conn.log"));
        Assert.Contains("conn.log:1: expected a '#fields' header", ex.Message, StringComparison.Ordinal);
    }
}
